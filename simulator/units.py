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
