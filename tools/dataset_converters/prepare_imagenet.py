"""Prepare ImageNet-1k offline: official tars to train/<wnid>/ and val/<wnid>/ folders.

    python tools/dataset_converters/prepare_imagenet.py OUT_DIR \
        --train-tar ILSVRC2012_img_train.tar --val-tar ILSVRC2012_img_val.tar \
        --val-labels ILSVRC2012_devkit_t12.tar.gz [--write-meta]

--val-labels also takes a folder with ILSVRC2012_validation_ground_truth.txt and meta.mat, or
Kaggle's LOC_val_solution.csv. Re-running skips finished classes and images. Counts are checked
against 1,281,167 / 50,000 / 1,000 and mismatches reported (exit status 1). An archive or label
file that cannot be used (not a tar, cut short, a class that is not a WordNet id, a member
escaping the output, a sparse or oversize member, a duplicate class tar or ImageId, an input
that is not a regular file, a devkit that inflates past its bound, a file that cannot be
written) is named in one sentence, exit status 2; two members with one file name are both kept,
the second renamed, and listed. Progress is a bar on a terminal and a line every 5% elsewhere.
"""
import argparse
import sys

from resnest_mm.datasets.imagenet_prep import (
    EXPECTED,
    UnsafeArchiveError,
    count_report,
    extract_train,
    extract_val,
    read_val_labels,
    write_meta,
)
from resnest_mm.utils.task_progress import TaskProgress


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='dataset root to create (e.g. data/imagenet)')
    parser.add_argument('--train-tar', help='ILSVRC2012_img_train.tar')
    parser.add_argument('--val-tar', help='ILSVRC2012_img_val.tar')
    parser.add_argument('--val-labels', help='devkit tar, folder, or LOC_val_solution.csv')
    parser.add_argument('--write-meta', action='store_true',
                        help='also write mmpretrain annotation lists meta/{train,val}.txt')
    args = parser.parse_args(argv)
    if not args.train_tar and not args.val_tar:
        parser.error('give --train-tar and/or --val-tar')
    if args.val_tar and not args.val_labels:
        parser.error('--val-tar needs --val-labels to sort the images into class folders')
    train, val, notes = {}, {}, []
    try:
        labels = read_val_labels(args.val_labels) if args.val_tar else {}  # checked first
        if args.train_tar:
            with TaskProgress(EXPECTED['classes'], 'training classes') as bar:
                train = extract_train(args.train_tar, args.out_dir, lambda _: bar.update(),
                                      notes)
        if args.val_tar:
            with TaskProgress(len(labels), 'validation images') as bar:
                val = extract_val(args.val_tar, labels, args.out_dir, lambda _: bar.update(),
                                  notes)
        if args.write_meta:
            for path in write_meta(args.out_dir):
                print(f'wrote {path}')
    except (UnsafeArchiveError, ValueError, FileNotFoundError, OSError) as exc:
        print(f'error: {exc}', file=sys.stderr, flush=True)
        return 2
    finally:
        for note in notes:
            print(f'note: {note}')
    report = count_report(train, val)
    print('\n'.join(report))
    return 1 if any('MISMATCH' in line for line in report) else 0


if __name__ == '__main__':
    sys.exit(main())
