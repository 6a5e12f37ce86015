/** Exit codes: scripts can tell a usage error from a failed operation from a partial success. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** The operation ran but found problems (a check failed, a verify found damage). */
export const EXIT_FINDINGS = 3;
