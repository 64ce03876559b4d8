"""Tests of physviz.recipes."""
