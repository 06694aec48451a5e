"""Presentation: the run report, the compare report, the drivers sections, exports, charts."""
