"""Step-DPO data pipeline and DPO / Step-DPO trainer (uses the harness; never imported by it)."""
