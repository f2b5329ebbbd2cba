import COpenBLAS

/// Thin wrapper over cblas_sgemm for row-major operands:
/// C = alpha * op(A) * op(B) + beta * C, with op(A) m×k and op(B) k×n.
@inline(__always)
func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
           _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int,
           _ b: UnsafePointer<Float>, _ ldb: Int,
           _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    guard m > 0, n > 0 else { return }
    GEMMKernel.ensureSelected()
    cblas_sgemm(CblasRowMajor,
                transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}


/// sgemm split across `Engine.threads` workers by output rows (or columns when
/// there are few rows). Each worker computes a disjoint block of C with the
/// full K sum, so no partial results are added together and a given thread
/// count always gives the same bits (OpenBLAS may pick other kernels for other
/// block sizes, so different counts agree to rounding only). Small products
/// stay on the calling thread.
func parallelSgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
                   _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int,
                   _ b: UnsafePointer<Float>, _ ldb: Int,
                   _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    let workers = Engine.threads
    guard workers > 1, m * n * k >= 1 << 20 else {
        sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    }
    if m >= n || m >= 8 * workers {
        parallelChunks(m, workers: workers) { rows, _ in
            let r0 = rows.lowerBound
            sgemm(transA, transB, rows.count, n, k, alpha, transA ? a + r0 : a + r0 * lda, lda,
                  b, ldb, beta, c + r0 * ldc, ldc)
        }
    } else {
        parallelChunks(n, workers: workers) { cols, _ in
            let c0 = cols.lowerBound
            sgemm(transA, transB, m, cols.count, k, alpha, a, lda, transB ? b + c0 * ldb : b + c0, ldb,
                  beta, c + c0, ldc)
        }
    }
}
