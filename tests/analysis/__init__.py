"""Tests of physviz.analysis."""
