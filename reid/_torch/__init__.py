"""Torch model definitions, used only to export ONNX files and to train; never by the bot."""
