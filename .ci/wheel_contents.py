"""The built wheel and sdist carry what a user needs: every module and data file of qkd_pl that
git tracks, the ``qkd`` command and the PennyLane device entry points, and the version of
``qkd_pl.__version__``. Usage: python .ci/wheel_contents.py WHEEL SDIST"""

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import qkd_pl  # noqa: E402  (the checkout's, for its version)

wheel, sdist = sys.argv[1:3]
tracked = {p for p in subprocess.run(["git", "ls-files", "qkd_pl"], capture_output=True, text=True,
                                     check=True).stdout.split() if not p.endswith((".pyc",))}
names = set(zipfile.ZipFile(wheel).namelist())
problems = [f"the wheel lacks {p}" for p in sorted(tracked - names)]
problems += [f"the wheel has {p}, which git does not track" for p in sorted(names - tracked)
             if not p.startswith(f"qkd_pl-{qkd_pl.__version__}.dist-info/")]
dist_info = f"qkd_pl-{qkd_pl.__version__}.dist-info"
entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode() if (
    f"{dist_info}/entry_points.txt" in names) else ""
for needed in ("qkd = qkd_pl.cli:main", "qkd.fused = qkd_pl.devices.fused:FusedQubit",
               "qkd.fused32 = qkd_pl.devices.fused:FusedQubit32"):
    if needed not in entry_points:
        problems.append(f"the wheel's entry points lack {needed!r} (is the version {qkd_pl.__version__}?)")
with tarfile.open(sdist) as tar:
    in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
problems += [f"the sdist lacks {p}" for p in sorted(tracked - in_sdist)]
for p in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md"):
    if p not in in_sdist:
        problems.append(f"the sdist lacks {p}")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"wheel and sdist of qkd-pl {qkd_pl.__version__}: {len(tracked)} tracked package files, entry points present")
