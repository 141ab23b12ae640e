"""Export a trained model as a state dict, TorchScript or ONNX, and check the written file.

    python tools/deploy/export.py CONFIG CHECKPOINT --format state_dict|torchscript|onnx
        [--dynamic-batch] [--out PATH] [--input-size H W] [--opset N] [--atol 1e-4] [--no-check]

The file is run back (torch.load / torch.jit.load / onnxruntime) against the PyTorch model and the
largest logit difference printed; PATH.json holds the input size, preprocessing and class names.
"""
from resnest_mm.frontends.infer_export import export
from resnest_mm.utils.errors import run_tool

if __name__ == '__main__':
    run_tool(export, 'tools/deploy/export.py')  # bad input: one sentence, exit status 2
