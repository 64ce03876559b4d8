"""Tests of physviz.train."""
