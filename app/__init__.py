"""Streamlit leaderboard over the DuckDB index of run files (reads results only)."""
