"""Tests of physviz.cli."""
