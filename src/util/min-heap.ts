/** What a heap item carries: its index in the heap, -1 while outside it */
export interface HeapItem {
  heapIndex: number
}

/**
 * An intrusive binary min-heap: each item stores its own index, so `update` and `remove` of any
 * item are O(log n) without a lookup, and nothing is allocated per operation. Items that compare
 * equal keep no particular order; break ties in `less` when order matters.
 */
export class MinHeap<T extends HeapItem> {
  private readonly items: T[] = []
  private readonly less: (a: T, b: T) => boolean

  /** `less(a, b)`: a comes out before b */
  constructor (less: (a: T, b: T) => boolean) {
    this.less = less
  }

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
      if (!this.less(item, parent)) {
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
      const child = right < length && this.less(items[right], items[left]) ? right : left
      if (!this.less(items[child], item)) {
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
