"""Tests of physviz.server."""
