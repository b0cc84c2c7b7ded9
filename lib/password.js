'use strict'
// `password` as a function (rotating credentials, cloud IAM tokens): the native pool asks for a
// password each time it opens a connection, and the function may be sync or async. Its answer
// goes back by request id; what it returns is never printed, also when it is not a string.

/** The function the native pool calls with a request id (src/napi/password.rs). */
function askPassword(binding, passwordFunction) {
  return (id) => {
    let answer
    try {
      answer = Promise.resolve(passwordFunction())
    } catch (e) {
      answer = Promise.reject(e)
    }
    answer.then(
      (value) => {
        if (typeof value === 'string') binding.providePassword(id, value, null)
        else binding.providePassword(id, null, `it returned ${value === null ? 'null' : typeof value}, not a string`)
      },
      (e) => binding.providePassword(id, null, `it threw or rejected: ${e && e.message ? e.message : String(e)}`),
    )
  }
}

module.exports = { askPassword }
