"""Panel/HoloViews/ipywidgets views over the layers below (arrives with issue 8)."""
