"""Low-memory mode is chosen from the device, the crop and the free memory (and printed)."""
from panoptic_deeplab.config import load_config
from panoptic_deeplab.training.memory import choose_low_memory

GIB = 2**30


def test_the_default_cityscapes_run_on_a_cpu_turns_low_memory_on():
    config = load_config("cityscapes/mobilenet_v3_large_os16")  # 1025x2049 crop
    choice = choose_low_memory(config, micro_batch=1, on_gpu=False, available_bytes=20 * GIB)
    assert choice.low_memory
    assert "1025x2049" in choice.describe() and "low-memory mode on" in choice.describe()
    assert "--no-low-memory" in choice.describe()


def test_small_crops_gpus_and_the_users_flag():
    tiny = load_config("synthetic/demo")  # 257x513, batch 4
    assert not choose_low_memory(tiny, micro_batch=4, on_gpu=False, available_bytes=20 * GIB).low_memory
    # The same run with little free memory left.
    assert choose_low_memory(tiny, micro_batch=4, on_gpu=False, available_bytes=3 * GIB).low_memory
    big = load_config("cityscapes/mobilenet_v3_large_os16")
    assert not choose_low_memory(big, micro_batch=1, on_gpu=True, available_bytes=20 * GIB).low_memory
    forced = choose_low_memory(tiny, micro_batch=4, on_gpu=False, available_bytes=20 * GIB, requested=True)
    assert forced.low_memory and "--low-memory given" in forced.describe()
    assert not choose_low_memory(big, micro_batch=1, on_gpu=False, available_bytes=None, requested=False).low_memory
