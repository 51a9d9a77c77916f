import { getEventListeners } from 'node:events'
import { describe, expect, it } from 'vitest'
import { abortable, untilAborted } from '../src/abortable.js'

describe('abortable / untilAborted', () => {
  it('pass the promise through and leave no abort listener behind', async () => {
    const controller = new AbortController()
    await expect(abortable(Promise.resolve(1), controller.signal)).resolves.toBe(1)
    await expect(untilAborted(Promise.reject(new Error('boom')), controller.signal)).rejects.toThrow('boom')
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
    const same = Promise.resolve(2)
    expect(abortable(same, undefined)).toBe(same)
  })

  it('abortable rejects with AbortError (the reason as cause); untilAborted with the reason itself', async () => {
    const reason = Object.assign(new Error('peer not found'), { code: 'ERR_PEER_NOT_FOUND' })
    const pending = new Promise<never>(() => {})
    const a = new AbortController()
    const waiting = [abortable(pending, a.signal), untilAborted(pending, a.signal)]
    a.abort(reason)
    const [wrapped, plain] = await Promise.allSettled(waiting)
    expect(wrapped).toMatchObject({ status: 'rejected', reason: { code: 'ERR_ABORTED', cause: reason } })
    expect(plain).toEqual({ status: 'rejected', reason })
    // Already aborted: rejected at once.
    await expect(untilAborted(pending, a.signal)).rejects.toBe(reason)
    await expect(abortable(pending, a.signal)).rejects.toMatchObject({ code: 'ERR_ABORTED' })
  })
})
