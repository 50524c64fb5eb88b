"""Export of trained PADet checkpoints: ONNX (real DeformConv), OpenVINO IR, INT8."""
