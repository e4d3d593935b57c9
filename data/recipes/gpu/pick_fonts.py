"""Copy at most N styles of each font family from one folder to another, spread over the family's styles (the GPU
machine's carry is capped: families, not weights, make renders differ). Usage: pick_fonts.py SOURCE TARGET N"""

import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path


def family(path: Path) -> str:
    return re.split(r"[-_]", re.sub(r"^\d+_", "", path.stem))[0]  # "073_Carlito-BoldItalic" -> "Carlito"


def main(source: str, target: str, per_family: str) -> None:
    families = defaultdict(list)
    for font in sorted(Path(source).glob("*.tt[fc]")) + sorted(Path(source).glob("*.otf")):
        families[family(font)].append(font)
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    picked = 0
    for fonts in families.values():
        keep = min(int(per_family), len(fonts))
        for i in range(keep):
            shutil.copy(fonts[i * len(fonts) // keep], out)
            picked += 1
    print(f"{picked} fonts of {len(families)} families into {target}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
