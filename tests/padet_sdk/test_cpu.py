"""CPU flag detection that picks (and checks) INT8 schemes: VNNI or not, never the vendor."""
from __future__ import annotations

import pytest

from padet_sdk import cpu


@pytest.mark.parametrize(
    "flags, target",
    [
        ("avx2 avx512f avx512bw avx512_vnni", "vnni"),  # Cascade Lake and later Xeons
        ("avx2 avx_vnni", "vnni"),  # Alder Lake: VEX-encoded VNNI without AVX-512
        ("avx2 amx_tile amx_int8", "vnni"),
        ("avx2 fma", "avx2"),  # AMD EPYC Zen 2/3, Intel Haswell-Skylake client
        ("avx2 avx512f avx512bw", "avx2"),  # Skylake-X: AVX-512 but no VNNI still saturates
        ("", "avx2"),
    ],
)
def test_int8_target_follows_vnni_flags(flags, target, monkeypatch):
    monkeypatch.setenv(cpu.FLAGS_ENV, flags)
    assert cpu.int8_target() == target
    assert cpu.int8_target(frozenset(flags.split())) == target


def test_flag_override_accepts_commas_and_case_and_shows_in_description(monkeypatch):
    monkeypatch.setenv(cpu.FLAGS_ENV, "AVX2, AVX512F")
    assert cpu.cpu_flags() == {"avx2", "avx512f"}
    line = cpu.describe_cpu()
    assert "avx2 avx512f" in line and cpu.FLAGS_ENV in line and "INT8 target: avx2" in line


def test_detected_flags_match_the_kernel_where_it_reports_them(monkeypatch):
    """Without an override, cpuid (numpy) and /proc/cpuinfo agree on a real (not emulated) CPU."""
    monkeypatch.delenv(cpu.FLAGS_ENV, raising=False)
    _, proc = cpu.proc_cpuinfo()
    if not proc or cpu.emulated():
        pytest.skip("no /proc/cpuinfo flags, or an emulated CPU")
    flags = cpu.cpu_flags()
    for f in ("avx2", "avx512f", "avx512_vnni"):
        assert (f in flags) == (f in proc), f
