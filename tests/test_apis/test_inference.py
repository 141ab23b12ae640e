"""init_model / inference_model on a checkpoint of a real (tiny) training run."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from resnest_mm.apis import inference_model, init_model
from resnest_mm.apis.inference import _inference_pipeline
from resnest_mm.utils.errors import ExplainedFileNotFoundError, ExplainedValueError
from tests.helpers.tiny_run import CONFIG, DIGIT_NAMES

pytestmark = pytest.mark.slow  # subprocesses or whole runs


@pytest.fixture(scope='module')
def model(tiny_run):
    return init_model(CONFIG, tiny_run['checkpoint'], device='cpu')


def test_model_carries_the_config_and_the_training_class_names(model):
    assert not model.training
    assert list(model.dataset_meta['classes']) == DIGIT_NAMES  # folders, from the checkpoint
    # the config's top-level data_preprocessor reached the model, as the Runner merges it
    assert model.data_preprocessor.to_rgb
    assert model.data_preprocessor.mean.flatten().tolist() == pytest.approx([123.675, 116.28,
                                                                            103.53])


def test_topk_is_sorted_named_and_matches_a_plain_forward(model, tiny_run):
    images = tiny_run['images'][:3]
    results = inference_model(model, images, topk=4, batch_size=2)
    assert len(results) == 3
    pipeline = _inference_pipeline(model.cfg)
    for path, result in zip(images, results):
        scores = [entry['score'] for entry in result['topk']]
        assert scores == sorted(scores, reverse=True) and len(scores) == 4
        assert all(e['class'] == DIGIT_NAMES[e['label']] for e in result['topk'])
        assert result['pred_label'] == result['topk'][0]['label']
        assert result['pred_class'] == DIGIT_NAMES[result['pred_label']]
        assert result['pred_scores'].sum() == pytest.approx(1., abs=1e-5)
        data = model.data_preprocessor(pseudo_collate([pipeline(dict(img_path=path))]), False)
        with torch.no_grad():
            probs = model(data['inputs'], mode='tensor').softmax(-1)[0]
        np.testing.assert_allclose(result['pred_scores'], probs.numpy(), atol=1e-6)


def test_arrays_give_the_same_answer_as_files(model, tiny_run):
    path = tiny_run['images'][4]
    from_file = inference_model(model, path)[0]
    from_array = inference_model(model, cv2.imread(path))[0]
    np.testing.assert_allclose(from_array['pred_scores'], from_file['pred_scores'], atol=1e-6)


INFERENCER_SCRIPT = """
import sys
import numpy as np
from mmpretrain.apis import ImageClassificationInferencer
from resnest_mm.apis import inference_model, init_model
model = init_model(sys.argv[1], sys.argv[2], device='cpu')
images = sys.argv[3:]
theirs = ImageClassificationInferencer(model, pretrained=False, device='cpu')(images)
ours = inference_model(model, images)
for a, b in zip(theirs, ours):
    assert a['pred_class'] == b['pred_class'], (a['pred_class'], b['pred_class'])
    assert np.abs(a['pred_scores'] - b['pred_scores']).max() < 1e-5
print('SAME', len(theirs))
"""


def test_mmpretrain_inferencer_runs_our_model_in_a_fresh_process(tiny_run, repo_root):
    """A new process: no Runner has set a default scope, as for a user of the inferencer."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, '-c', INFERENCER_SCRIPT, CONFIG,
                           tiny_run['checkpoint'], *tiny_run['images'][:2]],
                          cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'SAME 2' in proc.stdout


def test_grey_and_bgra_arrays_are_converted_and_bad_arrays_named(model, tiny_run):
    bgr = cv2.imread(tiny_run['images'][1])
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    expected = inference_model(model, cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))[0]['pred_scores']
    np.testing.assert_allclose(inference_model(model, grey)[0]['pred_scores'], expected,
                               atol=1e-6)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    np.testing.assert_allclose(inference_model(model, bgra)[0]['pred_scores'],
                               inference_model(model, bgr)[0]['pred_scores'], atol=1e-6)
    with pytest.raises(ExplainedValueError, match=r'image #1 \(an array\): .*uint8'):
        inference_model(model, [bgr, bgr.astype(np.float32)])
    with pytest.raises(ExplainedValueError, match='image #0 is a list'):
        inference_model(model, [[1, 2]])


def test_bad_images_are_named(model, tmp_path):
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not an image')
    with pytest.raises(ExplainedValueError, match='broken.jpg'):
        inference_model(model, str(broken))
    with pytest.raises(ExplainedFileNotFoundError, match='missing.jpg'):
        inference_model(model, str(tmp_path / 'missing.jpg'))


def test_official_layout_weights_load_directly(model, tmp_path, tiny_run):
    """Weights in the original package's layout (no prefixes, ``fc.``) give the same model."""
    official = {('fc.' + k[len('head.fc.'):]) if k.startswith('head.fc.') else
                k[len('backbone.'):]: v for k, v in model.state_dict().items()
                if k.startswith(('backbone.', 'head.fc.'))}
    path = tmp_path / 'official.pth'
    torch.save(official, path)
    twin = init_model(CONFIG, str(path), device='cpu')
    a = inference_model(model, tiny_run['images'][0])[0]['pred_scores']
    b = inference_model(twin, tiny_run['images'][0])[0]['pred_scores']
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_checkpoint_of_another_class_count_is_refused(tmp_path, tiny_run):
    with pytest.raises(ExplainedValueError, match='does not fit'):
        init_model(CONFIG, tiny_run['checkpoint'], device='cpu',
                   cfg_options={'model.head.num_classes': 7})


def test_names_come_from_the_data_folders_without_checkpoint_meta(tiny_run):
    model = init_model(CONFIG, None, device='cpu', cfg_options={
        'test_dataloader.dataset.data_root': tiny_run['data_root']})
    assert list(model.dataset_meta['classes']) == DIGIT_NAMES


def test_imagenet_config_names_and_decode_center_crop(tmp_path):
    """No checkpoint meta: ImageNet's names come from mmpretrain's ImageNet METAINFO, and the
    DecodeCenterCrop test pipeline runs on files and arrays alike."""
    from PIL import Image

    model = init_model('configs/resnest50_8xb128_in1k.py', None, device='cpu')
    assert len(model.dataset_meta['classes']) == 1000
    assert model.dataset_meta['classes'][0].startswith('tench')
    path = str(tmp_path / 'photo.JPEG')
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300, 3), np.uint8)).save(path)
    from_file, from_array = inference_model(model, [path, cv2.imread(path)], topk=3)
    assert from_file['pred_scores'].shape == (1000, )
    assert from_file['topk'][0]['class'] == model.dataset_meta['classes'][from_file['pred_label']]
    np.testing.assert_allclose(from_file['pred_scores'], from_array['pred_scores'], atol=1e-6)


def test_class_names_from_a_classes_file_metainfo_and_a_prefix_dict(tmp_path, tiny_run):
    names = [f'c{i}' for i in range(10)]
    listing = tmp_path / 'classes.txt'
    listing.write_text('\n'.join(names) + '\n')
    by_file = init_model(CONFIG, None, device='cpu',
                         cfg_options={'test_dataloader.dataset.classes': str(listing)})
    assert list(by_file.dataset_meta['classes']) == names
    by_meta = init_model(CONFIG, None, device='cpu', cfg_options={
        'test_dataloader.dataset.metainfo': dict(classes=names[::-1])})
    assert list(by_meta.dataset_meta['classes']) == names[::-1]
    by_prefix = init_model(CONFIG, None, device='cpu', cfg_options={
        'test_dataloader.dataset.data_root': tiny_run['data_root'],
        'test_dataloader.dataset.data_prefix': dict(_delete_=True, img_path='val')})
    assert list(by_prefix.dataset_meta['classes']) == DIGIT_NAMES
    with pytest.raises(ExplainedFileNotFoundError, match='nowhere.txt'):
        init_model(CONFIG, None, device='cpu',
                   cfg_options={'test_dataloader.dataset.classes': 'nowhere.txt'})


def test_a_checkpoint_of_the_timm_peer_config_loads_as_saved(tmp_path):
    """Keys that already fit the config's model (timm's network here) load without conversion."""
    config = 'configs/benchmarks/timm-resnest50d_8xb128_in1k.py'
    source = init_model(config, None, device='cpu')
    path = tmp_path / 'timm_run.pth'
    torch.save(dict(state_dict=source.state_dict(), meta={}), path)
    twin = init_model(config, str(path), device='cpu')
    for (key, a), b in zip(source.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), key
