// Prints the run's outcome as one plain line, "N passed, N failed, N skipped", which CI systems that do
// not parse Jest's own summary can read.
class PlainSummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    process.stdout.write(`\njest: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped\n`);
  }
}

module.exports = PlainSummaryReporter;
