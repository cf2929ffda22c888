"""Machine learning of the dynamics from the structure: the multilayer perceptron of Ciarella
et al. 2023 that predicts F_s(k_p, t) from S_ab(k), T, rho and the interaction.
:mod:`~supercooled.ml.features` builds the feature rows and the eq. 1 targets
F_s^aa = phi_s^a S_aa(k_p) from the library and standardises them;
:mod:`~supercooled.ml.network` holds the network and the one training loop;
:mod:`~supercooled.ml.ensemble` the deep ensemble and its files; :mod:`~supercooled.ml.baselines`
ridge regression, nearest neighbours and MCT; :mod:`~supercooled.ml.evaluation` the scores,
splits, cross-validation against the baselines, T / T_mct and the (re)training of the shipped
model; :mod:`~supercooled.ml.transfer` the temperature, interaction and density transfer
studies; :mod:`~supercooled.ml.predict` reads and checks a user's S(k) and predicts its F_s.
"""
