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
    assert not choose_low_memory(
        tiny, micro_batch=4, on_gpu=False, available_bytes=20 * GIB
    ).low_memory
    # The same run with little free memory left.
    assert choose_low_memory(tiny, micro_batch=4, on_gpu=False, available_bytes=3 * GIB).low_memory
    big = load_config("cityscapes/mobilenet_v3_large_os16")
    assert not choose_low_memory(
        big, micro_batch=1, on_gpu=True, available_bytes=20 * GIB
    ).low_memory
    forced = choose_low_memory(
        tiny, micro_batch=4, on_gpu=False, available_bytes=20 * GIB, requested=True
    )
    assert forced.low_memory and "--low-memory given" in forced.describe()
    assert not choose_low_memory(
        big, micro_batch=1, on_gpu=False, available_bytes=None, requested=False
    ).low_memory


_PROBE = """
import sys
from panoptic_deeplab.glibc_malloc import tune_malloc
tune_malloc()
import tensorflow as tf
tf.config.list_physical_devices("GPU")  # what `pdl train` asks before it chooses
if sys.argv[1] == "1":
    from panoptic_deeplab.training.memory import use_system_allocator
    assert use_system_allocator()
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) * 1024
x = tf.fill([128 * 2**20], 1.0)  # 512 MiB
float(tf.reduce_sum(x))
during = rss()
del x
print(during - rss())
"""


def _freed_bytes(system_allocator: bool) -> int:
    import os
    import subprocess
    import sys

    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", None)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, "1" if system_allocator else "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    return int(done.stdout.split()[-1])


def test_low_memory_mode_gives_freed_tensors_back_to_the_os():
    """Set where `pdl train` sets it (after the GPU query, before the first tensor), the system
    allocator unmaps a freed 512 MiB tensor; TensorFlow's default oneDNN BFC pool keeps it."""
    assert _freed_bytes(system_allocator=True) > 400 * 2**20
    assert _freed_bytes(system_allocator=False) < 100 * 2**20


def test_the_users_allocator_choice_is_kept(monkeypatch):
    from panoptic_deeplab.training.memory import SYSTEM_ALLOCATOR_ENV, use_system_allocator

    monkeypatch.setenv(SYSTEM_ALLOCATOR_ENV, "0")
    assert not use_system_allocator()
    monkeypatch.delenv(SYSTEM_ALLOCATOR_ENV)
    assert use_system_allocator()


_GRADIENTS = """
import sys
from panoptic_deeplab.glibc_malloc import tune_malloc
tune_malloc()
import tensorflow as tf
tf.config.list_physical_devices("GPU")
if sys.argv[1] == "1":
    from panoptic_deeplab.training.memory import use_system_allocator
    use_system_allocator()
import keras
import numpy as np
from panoptic_deeplab.config import load_config
from panoptic_deeplab.losses import PanopticLoss
from panoptic_deeplab.model.builder import build_model
keras.utils.set_random_seed(0)
config = load_config("synthetic/tiny")
network = build_model(config)
rng = np.random.default_rng(0)
h, w = 129, 257
image = tf.constant(rng.uniform(0, 255, (1, h, w, 3)), tf.float32)
targets = {
    "semantic": tf.constant(rng.integers(0, 8, (1, h, w)), tf.int32),
    "semantic_weights": tf.ones((1, h, w)),
    "center_heatmap": tf.constant(rng.uniform(0, 1, (1, h, w, 1)), tf.float32),
    "center_weights": tf.ones((1, h, w)),
    "offsets": tf.constant(rng.normal(0, 5, (1, h, w, 2)), tf.float32),
    "offset_weights": tf.ones((1, h, w)),
}
with tf.GradientTape() as tape:
    loss = PanopticLoss(config.loss)(targets, network(image, training=True))["loss"]
grads = tape.gradient(loss, network.trainable_variables)
np.savez(sys.argv[2], loss.numpy(), *[g.numpy() for g in grads])
"""


def test_the_system_allocator_leaves_loss_and_gradients_unchanged(tmp_path):
    import os
    import subprocess
    import sys

    import numpy as np

    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", None)
    results = []
    for system in ("0", "1"):
        out = tmp_path / f"grads{system}.npz"
        subprocess.run(
            [sys.executable, "-c", _GRADIENTS, system, str(out)], env=env, timeout=300, check=True
        )
        results.append(np.load(out))
    pool, system = results
    assert len(pool.files) > 10
    for key in pool.files:
        np.testing.assert_array_equal(pool[key], system[key])
