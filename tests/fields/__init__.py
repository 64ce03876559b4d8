"""Tests of physviz.fields."""
