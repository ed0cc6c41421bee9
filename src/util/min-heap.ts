/** What a heap item carries: its key, and the heap's bookkeeping */
export interface HeapItem {
  /** Smallest first; call `update` after changing it while the item is in the heap */
  heapKey: number
  /** Set by the heap on `push`: equal keys come out in the order they were pushed */
  heapSeq: number
  /** Its index in the heap, -1 while outside it */
  heapIndex: number
}

/** The one comparison, monomorphic so it inlines (a comparator callback shared by heaps does not) */
function less (a: HeapItem, b: HeapItem): boolean {
  return a.heapKey < b.heapKey || (a.heapKey === b.heapKey && a.heapSeq < b.heapSeq)
}

/**
 * An intrusive binary min-heap on `heapKey`: each item stores its own index, so `update` and
 * `remove` of any item are O(log n) without a lookup, and nothing is allocated per operation.
 * Equal keys come out first-pushed first.
 */
export class MinHeap<T extends HeapItem> {
  private readonly items: T[] = []
  private seq = 0

  get size (): number {
    return this.items.length
  }

  /** The least item, or undefined when empty */
  peek (): T | undefined {
    return this.items[0]
  }

  has (item: T): boolean {
    return item.heapIndex >= 0 && this.items[item.heapIndex] === item
  }

  push (item: T): void {
    item.heapSeq = this.seq++
    item.heapIndex = this.items.length
    this.items.push(item)
    this.siftUp(item.heapIndex)
  }

  /** Takes out the least item */
  pop (): T | undefined {
    const top = this.items[0]
    if (top !== undefined) {
      this.remove(top)
    }
    return top
  }

  /** Takes out any item; false when it was not in the heap */
  remove (item: T): boolean {
    const index = item.heapIndex
    if (!this.has(item)) {
      return false
    }
    item.heapIndex = -1
    const last = this.items.pop() as T
    if (last !== item) {
      this.items[index] = last
      last.heapIndex = index
      this.update(last)
    }
    return true
  }

  /** Restores the order after the item's key changed, in either direction */
  update (item: T): void {
    const index = item.heapIndex
    this.siftUp(index)
    if (item.heapIndex === index) {
      this.siftDown(index)
    }
  }

  /** Empties the heap; every item's index goes back to -1 */
  clear (): void {
    for (const item of this.items) {
      item.heapIndex = -1
    }
    this.items.length = 0
  }

  /** The items in heap order (not sorted) */
  [Symbol.iterator] (): IterableIterator<T> {
    return this.items[Symbol.iterator]()
  }

  private siftUp (index: number): void {
    const items = this.items
    const item = items[index]
    while (index > 0) {
      const parentIndex = (index - 1) >> 1
      const parent = items[parentIndex]
      if (!less(item, parent)) {
        break
      }
      items[index] = parent
      parent.heapIndex = index
      index = parentIndex
    }
    items[index] = item
    item.heapIndex = index
  }

  private siftDown (index: number): void {
    const items = this.items
    const length = items.length
    const item = items[index]
    for (;;) {
      const left = 2 * index + 1
      if (left >= length) {
        break
      }
      const right = left + 1
      const child = right < length && less(items[right], items[left]) ? right : left
      if (!less(items[child], item)) {
        break
      }
      items[index] = items[child]
      items[index].heapIndex = index
      index = child
    }
    items[index] = item
    item.heapIndex = index
  }
}
