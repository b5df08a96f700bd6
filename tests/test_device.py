import pytest
import torch

from burstsr.device import autocast, resolve_device
from burstsr.errors import InputError


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda_is_an_input_error():
    with pytest.raises(InputError, match="--device cuda"):
        resolve_device("cuda")


def test_unknown_device():
    with pytest.raises(InputError, match="--device tpu"):
        resolve_device("tpu")


def test_autocast_is_a_no_op_on_cpu():
    with autocast(torch.device("cpu")):
        x = torch.ones(2, 2) @ torch.ones(2, 2)
    assert x.dtype == torch.float32


def test_half_on_a_cpu_without_native_bfloat16_is_refused_by_name(monkeypatch):
    from burstsr import device as dev

    monkeypatch.setattr(dev, "cpu_has_bf16", lambda: False)
    with pytest.raises(InputError, match="--half: this CPU has no native bfloat16"):
        dev.check_half(torch.device("cpu"))
    monkeypatch.setattr(dev, "cpu_has_bf16", lambda: True)
    dev.check_half(torch.device("cpu"))  # accepted
    with pytest.raises(InputError, match="--half"):
        dev.check_half(torch.device("meta"))


def test_inference_precision_is_bfloat16_on_the_cpu_and_off_without_half():
    from burstsr.device import inference_precision

    conv = torch.nn.Conv2d(3, 3, 3)
    x = torch.rand(1, 3, 8, 8)
    with inference_precision(torch.device("cpu"), True):
        assert conv(x).dtype == torch.bfloat16
    with inference_precision(torch.device("cpu"), False):
        assert conv(x).dtype == torch.float32
