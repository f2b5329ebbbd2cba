import COpenBLAS

/// Thin wrapper over cblas_sgemm for row-major operands:
/// C = alpha * op(A) * op(B) + beta * C, with op(A) m×k and op(B) k×n.
@inline(__always)
func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
           _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int,
           _ b: UnsafePointer<Float>, _ ldb: Int,
           _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    guard m > 0, n > 0 else { return }
    cblas_sgemm(CblasRowMajor,
                transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

