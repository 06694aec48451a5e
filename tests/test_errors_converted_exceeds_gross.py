"""``minersim validate`` on a conversion larger than its site.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import BASE, validate


def test_converted_mw_exceeds_gross(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nsites:\n  - name: sandersville\n    conversion:\n"
                    "      converted_gross_mw: 400\n")
    assert validate(path) == (f"{path}:5: sites[0].conversion.converted_gross_mw: must not exceed "
                              "gross_mw (draws reach 400 > 250)\n")
