"""Run transformers' common tests (../shared/hf-common/run.sh) and fail unless every failure is an argued one.

The suite runs whole and unmodified; its junit XML is read back and compared with .ci/hfcommon-known-failures.txt.
Exit 1 on a failure not listed there, or on a listed test that now passes (the list must stay true).
"""

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = Path(os.environ.get("HFCOMMON_RUN", ROOT.parent / "shared" / "hf-common" / "run.sh"))
KNOWN = ROOT / ".ci" / "hfcommon-known-failures.txt"


def failed_tests(out: Path) -> set[str]:
    failed = set()
    for xml in out.glob("*.xml"):
        for case in ElementTree.parse(xml).iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed.add(f"{case.get('classname').rsplit('.', 1)[-1]}::{case.get('name')}")
    return failed


def main() -> int:
    if not RUN.is_file():  # a clone without ../shared beside it (CI always has it)
        print(f"hf-common suite not found at {RUN}: skipped (set HFCOMMON_RUN to its run.sh)", file=sys.stderr)
        return 0
    known = {line.split()[0] for line in KNOWN.read_text().splitlines() if line.strip() and not line.startswith("#")}
    with tempfile.TemporaryDirectory() as out:
        environment = {**os.environ, "HFCOMMON_VENV": str(ROOT / ".venv"), "HFCOMMON_OUT": out}
        subprocess.run(["bash", str(RUN), str(ROOT)], env=environment, check=False)
        failed = failed_tests(Path(out))
    unexpected, fixed = sorted(failed - known), sorted(known - failed)
    for name in unexpected:
        print(f"hf-common: unexpected failure {name}")
    for name in fixed:
        print(f"hf-common: {name} passes now; delete it from {KNOWN.name}")
    print(f"hf-common gate: {len(failed & known)} argued failures, {len(unexpected)} unexpected, {len(fixed)} stale")
    return 1 if unexpected or fixed else 0


if __name__ == "__main__":
    sys.exit(main())
