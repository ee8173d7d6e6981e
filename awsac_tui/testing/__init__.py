"""Test tools that ship with the package so that tests, scripts/ and bench/ share them: a fixed
backend with fixture data and the TUI latency probe. The app never imports this package at run
time (an import-linter contract says so).
"""
