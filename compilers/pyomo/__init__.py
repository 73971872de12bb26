"""The Pyomo backend: IR + data -> ``pyomo.environ.ConcreteModel`` -> solver."""
