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
