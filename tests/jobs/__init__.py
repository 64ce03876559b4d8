"""Tests of physviz.jobs."""
