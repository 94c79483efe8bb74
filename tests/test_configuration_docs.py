"""Every environment variable the settings read is documented."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_variable_is_documented():
    source = (ROOT / "config" / "settings.py").read_text()
    variables = set(re.findall(r'env_(?:str|bool|int|float|list)\(\s*"([A-Z0-9_]+)"', source))
    documented = (ROOT / "docs" / "configuration.md").read_text()
    assert len(variables) > 40
    missing = sorted(name for name in variables if f"`{name}`" not in documented)
    assert missing == []
