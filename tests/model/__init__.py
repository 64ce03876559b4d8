"""Tests of physviz.model."""
