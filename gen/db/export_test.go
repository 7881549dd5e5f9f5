package db

// Query texts for the query-plan test (package db_test). Hand-written; sqlc
// leaves files it did not generate alone.
var (
	ClaimTasksSQL                    = claimTasks
	ListTasksSQL                     = listTasks
	ListSubtasksSQL                  = listSubtasks
	ListResultMessagesSQL            = listResultMessages
	ListResultMessagesOfTasksSQL     = listResultMessagesOfTasks
	RequeueTasksOfClaimerSQL         = requeueTasksOfClaimer
	RequeueStaleTasksSQL             = requeueStaleTasks
	LockRetentionRootsSQL            = lockRetentionRoots
	LockRetentionTreesSQL            = lockRetentionTrees
	DeleteTasksByIDSQL               = deleteTasksByID
	LockTaskTreeSQL                  = lockTaskTree
	TerminateTasksSQL                = terminateTasks
	RequeueClaimedTasksSQL           = requeueClaimedTasks
	CountTaskTreesSQL                = countTaskTreesCreatedBefore
	InsertTasksSQL                   = insertTasks
	ExistingTaskIDsSQL               = existingTaskIDs
	DrydockImportRejectedTaskKeysSQL = drydockImportRejectedTaskKeys
	GetTaskSQL                       = getTask
	CompleteTasksSQL                 = completeTasks
	ListBuildDataByNodeSQL           = listBuildDataByNode
	ListBuildDataByTaskSQL           = listBuildDataByTask
	ListBuildDataByNodeTaskSQL       = listBuildDataByNodeAndTask
	LatestBuildDataOfNodeSQL         = latestBuildDataOfNode
	LatestBuildDataOfAllNodesSQL     = latestBuildDataOfAllNodes
	ListBootActionStatusesSQL        = listBootActionStatusesOfNode
	QueuedTaskExistsSQL              = queuedTaskExists
	ListTasksFilteredSQL             = listTasksFiltered
	ListTaskTreeSQL                  = listTaskTree
	ListTaskAncestorsSQL             = listTaskAncestors
	ListBootActionContextsSQL        = listBootActionContexts
	BuildDataPreviewsSQL             = latestBuildDataPreviewsOfNode
	ListMessagesByClientIDSQL        = listMessagesByClientID
	LockTaskForAppendSQL             = lockTaskForAppend
	GetTasksSQL                      = getTasks
	QueueStatsSQL                    = queueStats
)
