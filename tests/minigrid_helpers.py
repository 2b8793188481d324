"""Shared helpers of the MiniGrid tests: action ids and a shortest-path planner over (x, y, direction)."""

from collections import deque

LEFT, RIGHT, FORWARD, PICKUP, TOGGLE = 0, 1, 2, 3, 5
DIR_VEC = ((1, 0), (0, 1), (-1, 0), (0, -1))  # minigrid's DIR_TO_VEC: right, down, left, up


def facing(target):
    """Goal test of `plan`: the agent faces the cell `target`."""
    return lambda s: (s[0] + DIR_VEC[s[2]][0], s[1] + DIR_VEC[s[2]][1]) == target


def plan(base, goal_test):
    """BFS over (x, y, dir) with left/right/forward in the current grid; the action list, or None if no path."""
    start = (*map(int, base.agent_pos), int(base.agent_dir))

    def passable(x, y):
        cell = base.grid.get(x, y)
        return cell is None or cell.can_overlap()

    prev = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if goal_test(state):
            actions = []
            while prev[state] is not None:
                state, a = prev[state]
                actions.append(a)
            return actions[::-1]
        x, y, d = state
        dx, dy = DIR_VEC[d]
        nexts = [((x, y, (d - 1) % 4), LEFT), ((x, y, (d + 1) % 4), RIGHT)]
        if passable(x + dx, y + dy):
            nexts.append(((x + dx, y + dy, d), FORWARD))
        for nxt, a in nexts:
            if nxt not in prev:
                prev[nxt] = (state, a)
                queue.append(nxt)
    return None
