"""supercooled: dynamics of supercooled Kob-Andersen mixtures from static structure.

Simulation (LAMMPS), measurement of S_ab(k) and F_s(k_p, t), a state-point library,
mode-coupling theory, a multilayer perceptron and a fitted memory function; see the book.
"""

__version__ = "0.1.0"
