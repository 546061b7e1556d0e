"""br.fit from several threads gives exactly the sequential answers, for every method."""

import threading
import warnings

import numpy as np
import pytest

import bayesreg as br

X = np.linspace(-1, 1, 16)
Y = np.sin(2 * X) + 0.1 * np.cos(7 * X)

METHODS = {
    "NUTS": (br.Polynomial(2), br.NUTS(num_warmup=60, num_samples=40, num_chains=1,
                                       progress_bar=False)),
    "VI": (br.Polynomial(2), br.VI(steps=200, num_samples=20, progress_bar=False)),
    "MAP": (br.MLP((4,)), br.MAP(steps=100)),
    "Exact": (br.Polynomial(2), br.Exact(num_samples=10)),
}


def _fit(name, seed):
    model, method = METHODS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains warn about R-hat; not the point here
        post = br.fit(model, X, Y, method=method, seed=seed)
    return np.asarray(post.predict(X).mean)


@pytest.mark.parametrize("name", ["NUTS", "VI"])
@pytest.mark.slow  # 12 fits, NUTS and VI among them
def test_numpyro_methods_from_threads_equal_sequential_fits(name):
    jobs = [(name, seed) for seed in range(4)] + [("MAP", 0), ("Exact", 1)]
    sequential = [_fit(*job) for job in jobs]
    results, errors = [None] * len(jobs), []

    def work(i):
        try:
            results[i] = _fit(*jobs[i])
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for got, want in zip(results, sequential, strict=True):
        np.testing.assert_array_equal(got, want)
