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


def test_mmpretrain_inferencer_runs_our_model(model, tiny_run):
    from mmpretrain.apis import ImageClassificationInferencer

    inferencer = ImageClassificationInferencer(model, pretrained=False, device='cpu')
    theirs = inferencer(tiny_run['images'][:2])
    ours = inference_model(model, tiny_run['images'][:2])
    for a, b in zip(theirs, ours):
        assert a['pred_label'] == b['pred_label']
        assert a['pred_class'] == b['pred_class']
        np.testing.assert_allclose(a['pred_scores'], b['pred_scores'], atol=1e-5)


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
