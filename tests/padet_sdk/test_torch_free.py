"""padet_sdk must run on devices without torch: importing it (and every module in it) must not
import torch, training or export."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCKER = r"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'torchvision', 'training', 'export'):
            raise ImportError(f'blocked import of {name} (padet_sdk must stay torch-free)')
        return None
sys.meta_path.insert(0, Block())
"""


def test_every_padet_sdk_module_imports_without_torch():
    code = BLOCKER + r"""
import pkgutil, importlib, padet_sdk
names = [m.name for m in pkgutil.walk_packages(padet_sdk.__path__, 'padet_sdk.')]
for n in names:
    importlib.import_module(n)
assert 'torch' not in sys.modules
print('imported', len(names) + 1, 'modules')
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "imported" in r.stdout
