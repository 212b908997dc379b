"""Presenting results: terminal tables, files on disk, plots and the HTML report."""
