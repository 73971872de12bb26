"""The backend-neutral compiled form (:mod:`.form`) and its vectorised builder from the IR (:mod:`.build`)."""
