"""Studies: orchestrations over many calculators (compare, sweep, the paper's figures, the
validation against measured runs). They read specs and call :mod:`planner.calc`; they never
format output (that is :mod:`planner.report`)."""
