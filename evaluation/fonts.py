"""A Japanese font that travels with the report, so no page shows empty boxes on a
machine without CJK fonts.

The font is Noto Sans CJK JP Regular (SIL Open Font License 1.1, which allows
subsetting and embedding in documents), shipped by the PyPI package
``noto-cjk-sans-jp-regular`` (a project dependency, so the offline bundle carries
it). It is never installed into the system's font configuration:

- HTML: `font_face_css` subsets the font (fontTools) to the characters the page
  uses and embeds it as a base64 ``@font-face`` (a few tens of kB);
- plots: `plot_rc` gives matplotlib settings that draw text with the font file
  (registered with matplotlib only, not fontconfig).
"""
from __future__ import annotations

import base64
import importlib.util
import io
from functools import lru_cache
from pathlib import Path

from ranksearch.errors import ConfigError

FONT_PACKAGE = "noto-cjk-sans-jp-regular"
FONT_MODULE = "noto_cjk_sans_jp_regular"
FONT_FILE = "NotoSansCJKjp-Regular.otf"
#: CSS family name of the embedded subset (distinct from any installed font's name).
CSS_FAMILY = "RanksearchJP"
FONT_LICENSE = "Noto Sans CJK JP, SIL Open Font License 1.1"


def japanese_font_path() -> Path:
    """The OTF file from the font package (located without importing it)."""
    spec = importlib.util.find_spec(FONT_MODULE)
    path = Path(spec.origin).parent / FONT_FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        raise ConfigError("lang", f"Japanese reports need the {FONT_PACKAGE} package "
                                  f"(pip install {FONT_PACKAGE}; it is a ranksearch dependency)")
    return path


def subset_font(chars: str) -> bytes:
    """The font reduced to ``chars`` (plus .notdef), as OpenType bytes."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.notdef_outline = True
    options.name_IDs = ["*"]          # keep the copyright and licence names
    options.name_languages = ["*"]
    font = TTFont(str(japanese_font_path()), lazy=True)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(set(chars))))
    subsetter.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    return buf.getvalue()


def font_face_css(chars: str) -> str:
    """A ``@font-face`` rule embedding the font subset for ``chars`` as base64."""
    data = base64.b64encode(subset_font(chars)).decode("ascii")
    return (f"/* {FONT_LICENSE}; subset embedded by ranksearch */"
            f"@font-face{{font-family:'{CSS_FAMILY}';font-style:normal;font-weight:400;"
            f"src:url(data:font/otf;base64,{data}) format('opentype');}}")


@lru_cache(maxsize=1)
def _matplotlib_family() -> str:
    from matplotlib import font_manager

    path = japanese_font_path()
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def plot_rc(lang: str) -> dict:
    """matplotlib rc settings for plots in ``lang`` (Japanese: the bundled font first,
    DejaVu Sans for any glyph it lacks)."""
    if lang != "ja":
        return {}
    return {"font.family": [_matplotlib_family(), "DejaVu Sans"], "axes.unicode_minus": False}
