"""The one table of unit spellings and conversion factors.

Every cube variable takes its ``units`` attribute from ``UNITS`` here, so ``USD/PH/day`` is
spelled one way everywhere. Stdlib only.
"""

from __future__ import annotations

# Unit spellings used in cube attrs, reports and docstrings.
USD = "USD"
USD_PER_BTC = "USD/BTC"
USD_PER_SHARE = "USD/share"
USD_PER_MONTH = "USD/month"
USD_PER_PH_DAY = "USD/PH/day"
USD_PER_MWH = "USD/MWh"
USD_PER_KW_MONTH = "USD/kW-month"
BTC = "BTC"
BTC_PER_MONTH = "BTC/month"
BTC_PER_BLOCK = "BTC/block"
EHS = "EH/s"
MW = "MW"
J_PER_TH = "J/TH"
BLOCKS = "blocks"
SHARES = "shares"
MONTHS = "months"
ONE = "1"

# Conversion factors.
PH_PER_EH = 1_000.0
TH_PER_EH = 1_000_000.0
KW_PER_MW = 1_000.0
HOURS_PER_DAY = 24.0
DAYS_PER_YEAR = 365.25
MONTHS_PER_YEAR = 12
DAYS_PER_MONTH = DAYS_PER_YEAR / MONTHS_PER_YEAR  # 30.4375
HOURS_PER_MONTH = HOURS_PER_DAY * DAYS_PER_MONTH  # 730.5
SECONDS_PER_DAY = 86_400.0
TARGET_BLOCK_SECONDS = 600.0
BLOCKS_PER_DAY = SECONDS_PER_DAY / TARGET_BLOCK_SECONDS  # 144
DIFFICULTY_WINDOW_BLOCKS = 2016
USD_PER_MILLION = 1_000_000.0


def mw_from_hashrate(hashrate_ehs: float, j_per_th: float) -> float:
    """MW drawn by ``hashrate_ehs`` EH/s at ``j_per_th`` J/TH.

    1 EH/s = 1e6 TH/s; at J/TH that is 1e6·J/TH watts = J/TH MW (CHK-4: 50 × 16.07 = 803.5).
    """
    return hashrate_ehs * j_per_th


# Scenario key suffix -> units of an input (the longest matching suffix wins): keys name their
# units because YAML has no docstrings (design.md, "The scenario language").
INPUT_SUFFIXES = {
    "_usd_per_mwh": USD_PER_MWH, "_usd_per_kw_month": USD_PER_KW_MONTH,
    "_usd_m_per_mw_it": "USD million/MW", "_usd_m_per_mw": "USD million/MW",
    "_usd_per_mw_month": "USD/MW-month", "_usd_m_per_year": "USD million/year",
    "_usd_per_mw": "USD/MW", "_usd_m": "USD million", "_usd_per_th": "USD/TH", "_usd": USD,
    "_btc_per_block": BTC_PER_BLOCK,
    "_btc": BTC, "_ehs": EHS, "_mw": MW, "_j_per_th": J_PER_TH, "_months": MONTHS,
    "_per_year": "1/year", "_monthly": "1/month", "_years": "years",
    ".date": "months after valuation date", ".btc": BTC,
}


def input_units(key: str) -> str:
    """Units of a scenario input from its key path's suffix (rates, ratios, multiples: ``1``)."""
    for suffix in sorted(INPUT_SUFFIXES, key=len, reverse=True):
        if key.endswith(suffix):
            return INPUT_SUFFIXES[suffix]
    return ONE
