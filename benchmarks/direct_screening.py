"""The reduced screening QP built by hand with numpy/scipy.sparse and solved by highspy directly.

Run as a whole process by ``benchmarks/run.py`` (P1), so that interpreter start-up and imports count on
both sides:  python benchmarks/direct_screening.py K   ->  prints the objective (repr of a float).

Screening with K types theta_k = k/K, prior f_k = 1/K (F_k = k/K), utility theta q - p, cost q^2/2.
With the adjacent downward IC binding and the IR of type 1 binding, the payments are eliminated and
the expected profit becomes  sum_k f_k (v_k q_k - q_k^2 / 2)  with the virtual values

    v_k = theta_k - (theta_{k+1} - theta_k) (1 - F_k) / f_k      (v_K = theta_K since 1 - F_K = 0)

here v_k = (2k - K) / K.  The reduced QP: max that, subject to q_{k+1} - q_k >= 0 (K - 1 rows), q >= 0.
This is the same model mechdsl's passes produce (local_ic + drop_implied + eliminate_payments): K
columns and the K - 1 monotonicity rows.

The objective is multiplied by 1/f_k = K (Hessian = I): with the Hessian entries 1/K as they are, HiGHS
1.16's QP solver reports this bounded convex QP "Unbounded" for K >= 300 (measured at K = 300, 1000,
3000).  As mechdsl does, the Hessian regularisation is set to 1e-12 (HiGHS's default 1e-7 moves the
optimum by ~1e-12 here).
"""
import sys

import highspy
import numpy as np
import scipy.sparse as sps


def main(K: int) -> float:
    k = np.arange(1, K + 1, dtype=float)
    theta = k / K
    f = np.full(K, 1.0 / K)
    F = np.cumsum(f)
    dtheta = np.append(np.diff(theta), 0.0)
    v = theta - dtheta * (1.0 - F) / f
    v[-1] = theta[-1]
    scale = 1.0 / f[0]  # the objective times K: Hessian = I (see the module docstring)
    # minimise  scale (-sum f v q + 1/2 q' diag(f) q)   s.t.  0 <= q_{k+1} - q_k,  q >= 0
    A = sps.diags([-np.ones(K - 1), np.ones(K - 1)], [0, 1], shape=(K - 1, K), format="csc")
    A.sort_indices()
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = K, K - 1
    lp.col_cost_ = -scale * f * v
    lp.col_lower_ = np.zeros(K)
    lp.col_upper_ = np.full(K, inf)
    lp.row_lower_ = np.zeros(K - 1)
    lp.row_upper_ = np.full(K - 1, inf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = K, K - 1
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(float)
    hess = highspy.HighsHessian()
    hess.dim_ = K
    hess.format_ = highspy.HessianFormat.kTriangular
    hess.start_ = np.arange(K + 1, dtype=np.int32)
    hess.index_ = np.arange(K, dtype=np.int32)
    hess.value_ = scale * f
    model = highspy.HighsModel()
    model.lp_ = lp
    model.hessian_ = hess
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("qp_regularization_value", 1e-12)
    h.passModel(model)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if status != "Optimal":
        raise SystemExit(f"HiGHS: {status}")
    return -h.getInfo().objective_function_value / scale


if __name__ == "__main__":
    print(repr(float(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))))
