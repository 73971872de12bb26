"""The CasADi backend for NLPs: the IR compiled straight to a CasADi MX graph, solved by IPOPT."""
