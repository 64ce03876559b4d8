"""Tests of physviz.widgets."""
