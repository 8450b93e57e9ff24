"""Where a check runs: the checked devices and the device of its float64 truth.

The closed form runs on the checked device in the checked dtype; the reference (float64,
with its bound) runs where float64 is real (DESIGN.md principle 9): on the checked device
when its backend computes float64, else on the host CPU. Whether a backend computes
float64 is asked of it (:func:`computes_float64`), not assumed from its name: a TPU
refuses float64 or rewrites part of it in pairs of float32 with float32's range.

With a mesh, each batch is sharded over several devices of the platform along its point
axis (a one-axis :class:`jax.sharding.Mesh`); every point is computed as on one device.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import numpy as np

from derivcheck.errors import InvalidArgument

__all__ = ["REFERENCE_DEVICE_ENV", "Placement", "computes_float64", "placement_for", "resolve_device"]

#: For testing only: run every reference on this device (``cpu:1``), whatever the checked
#: device; the CLI's ``--reference-device`` defaults to it.
REFERENCE_DEVICE_ENV = "DERIVCHECK_REFERENCE_DEVICE"


def resolve_device(name: str | None = None) -> jax.Device:
    """The device ``name``: a platform (``cpu``, ``gpu``, ``tpu``: its first device), a
    platform and index (``cpu:1``), or None for JAX's default device."""
    if name is None:
        return jax.devices()[0]
    platform, index = _parsed(name)
    devices = devices_of(platform)
    if index >= len(devices):
        raise InvalidArgument(f"no device {name!r}: JAX sees {len(devices)} {platform} device(s)")
    return devices[index]


def _parsed(name: str) -> tuple[str, int]:
    platform, _, index = name.partition(":")
    if platform not in ("cpu", "gpu", "tpu") or (index and not index.isdigit()):
        raise InvalidArgument(f"unknown device {name!r}; choose cpu, gpu or tpu, optionally with an index (cpu:1)")
    return platform, int(index or 0)


def devices_of(platform: str) -> list[jax.Device]:
    """Every device of ``platform`` this process can address; a clear error when JAX has none."""
    try:
        return jax.local_devices(backend=platform)
    except RuntimeError:
        seen = ", ".join(sorted({d.platform for d in jax.devices()}))
        raise InvalidArgument(f"no {platform} device is available here (JAX sees: {seen})") from None


# The probe: the square of 1 + 2**-40 minus 1 is 0 in float32 (and in bfloat16), e**700
# (about 1e304) is beyond float32's range, and neither survives float64 emulated in pairs
# of float32 with float32's exponent range. A backend that computes float64 matches NumPy
# to a few ulps of 1 (XLA may fuse the first into one fused multiply-add, which keeps the
# 2**-80 NumPy rounds away).
_PROBE = np.array([1.0 + 2.0**-40, 700.0, -3.25], np.float64)


def _probe(x, xp):
    return xp.stack([x[0] * x[0] - 1.0, xp.exp(x[1]), x[2] * x[0]])


@functools.cache
def computes_float64(device: jax.Device) -> bool:
    """Whether ``device`` computes float64 as NumPy does: a tiny probe, run once per device.

    False where the backend refuses float64 (TPU: "64-bit data types are not yet
    supported") or returns anything but NumPy's float64 values.
    """
    import jax.numpy as jnp

    try:
        with jax.enable_x64(True):
            got = jax.device_get(jax.jit(functools.partial(_probe, xp=jnp))(jax.device_put(_PROBE, device)))
    except Exception:  # the backend's refusal, whatever its type
        return False
    return matches_float64(np.asarray(got))


def matches_float64(got: np.ndarray) -> bool:
    """Whether a backend's probe values are NumPy's float64 ones (within a few ulps of 1)."""
    expected = _probe(_PROBE, np)
    with np.errstate(invalid="ignore"):
        close = np.abs(got.astype(np.float64) - expected) <= 1e-13 * np.maximum(np.abs(expected), 1.0)
    return got.dtype == np.float64 and bool(np.all(close))


def host_device() -> jax.Device:
    """The host CPU, where the truth runs when the checked device has no float64."""
    (device, *_) = devices_of("cpu")
    return device


def describe(device: jax.Device) -> str:
    """How results name a device: ``cpu:0 (cpu)``, ``gpu:0 (NVIDIA H200)``."""
    return f"{device.platform}:{device.id} ({device.device_kind})"


@dataclasses.dataclass(frozen=True)
class Placement:
    """The closed form's devices (one, or a mesh over the batch) and the reference's."""

    devices: tuple[jax.Device, ...]
    reference_devices: tuple[jax.Device, ...]
    #: The reference device was chosen by the caller (``--reference-device``), not derived:
    #: the replay command then names it.
    forced_reference: str | None = None

    @property
    def device(self) -> jax.Device:
        return self.devices[0]

    @property
    def platform(self) -> str:
        return self.device.platform

    @property
    def reference_platform(self) -> str:
        return self.reference_devices[0].platform

    @property
    def width(self) -> int:
        """How many devices share a batch: its row count is padded to a multiple of this."""
        return len(self.devices)

    def put(self, arrays):
        """Host arrays (leading axis: points) onto the checked devices."""
        return jax.device_put(arrays, _target(self.devices))

    def put_reference(self, arrays):
        """Host arrays onto the reference's devices."""
        return jax.device_put(arrays, _target(self.reference_devices))

    def to_checked(self, tree):
        """The reference's outputs where the closed form's are (a no-op on the same devices)."""
        if self.reference_devices == self.devices:
            return tree
        return jax.device_put(tree, _target(self.devices))


def _target(devices: tuple[jax.Device, ...]):
    if len(devices) == 1:
        return devices[0]
    mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))


def placement_for(device: str | jax.Device | None = None, *, mesh: int | str = 1,
                  reference_device: str | None = None) -> Placement:
    """Where a check on ``device`` runs: ``mesh`` devices from it on (``"all"``: every device
    of its platform), the reference on them if they compute float64, else on the host CPU;
    ``reference_device`` (for testing; default ``$DERIVCHECK_REFERENCE_DEVICE``) forces it."""
    first = device if isinstance(device, jax.Device) else resolve_device(device)
    devices = _mesh_devices(first, mesh)
    forced = reference_device if reference_device is not None else os.environ.get(REFERENCE_DEVICE_ENV) or None
    if forced is not None:
        ref = resolve_device(forced)
        if not computes_float64(ref):
            raise InvalidArgument(f"reference device {forced!r} does not compute float64")
        return Placement(devices, (ref,), forced)
    if all(computes_float64(d) for d in devices):
        return Placement(devices, devices)
    return Placement(devices, (host_device(),))


def _mesh_devices(first: jax.Device, mesh: int | str) -> tuple[jax.Device, ...]:
    local = devices_of(first.platform)
    if mesh == "all":
        if first != local[0]:
            raise InvalidArgument(f"--mesh all spans every {first.platform} device: give no device index")
        return tuple(local)
    if isinstance(mesh, bool) or not isinstance(mesh, int) or mesh < 1:
        raise InvalidArgument(f"mesh must be a number of devices >= 1 or 'all', got {mesh!r}")
    start = local.index(first)
    if start + mesh > len(local):
        raise InvalidArgument(f"a mesh of {mesh} devices from {first.platform}:{start} needs {start + mesh} "
                              f"{first.platform} devices; JAX sees {len(local)}")
    return tuple(local[start:start + mesh])
