"""KFP components of liftoff, one folder each. `component.py` holds the KFP definition (a thin
body); `task.py` holds the work, as a plain function tested without KFP. Vertex-only steps built
from Google Cloud Pipeline Components live in `vertex.py` beside them.
"""
