"""Classify images with a trained model and print the top-k classes of each.

    python tools/infer.py IMAGE [IMAGE ...] --config CONFIG --checkpoint CKPT [--topk 5]
        [--device cpu|cuda:0|npu:0] [--out predictions.json]

Class names come from the checkpoint (the training data set's folders or ImageNet's names), or
from the config's data set; images are prepared by the config's test pipeline.
"""
from resnest_mm.frontends.infer_export import infer
from resnest_mm.utils.errors import run_tool

if __name__ == '__main__':
    run_tool(infer, 'tools/infer.py')  # bad input: one sentence, exit status 2
